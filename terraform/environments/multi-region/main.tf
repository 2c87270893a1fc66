# Three edge regions, the control plane and FoundationDB in the primary one, VPC peering between
# all three (peering.tf), one latency-routed hostname, and the example actors (actors.tf).

provider "aws" {
  alias  = "primary"
  region = var.primary_region

  default_tags {
    tags = { "latchkey:environment" = var.name }
  }
}

provider "aws" {
  alias  = "secondary"
  region = var.secondary_region

  default_tags {
    tags = { "latchkey:environment" = var.name }
  }
}

provider "aws" {
  alias  = "tertiary"
  region = var.tertiary_region

  default_tags {
    tags = { "latchkey:environment" = var.name }
  }
}

locals {
  all_vpc_cidrs = [var.vpc_cidrs.primary, var.vpc_cidrs.secondary, var.vpc_cidrs.tertiary]

  # Shared settings of the three edge regions.
  edge = {
    latchkey_binary_url        = var.latchkey_binary_url
    latchkey_binary_sha256     = var.latchkey_binary_sha256
    fdb_clients_version        = var.fdb_version
    enrolment_token_secret_arn = var.enrolment_token_secret_arn
    secrets_kms_key_arn        = var.secrets_kms_key_arn
    certificate_domain_name    = var.create_certificates ? var.hostname : null
    route53_zone_id            = var.create_certificates ? var.route53_zone_id : null
  }

  fdb_cluster_file = (
    var.existing_fdb_cluster_file != null ? var.existing_fdb_cluster_file : one(module.fdb[*].cluster_file)
  )
}

# --- Edge regions --------------------------------------------------------------------------------

module "edge_primary" {
  source    = "../../modules/aws-region"
  providers = { aws = aws.primary }

  name       = var.name
  tags       = var.tags
  vpc_cidr   = var.vpc_cidrs.primary
  peer_cidrs = [var.vpc_cidrs.secondary, var.vpc_cidrs.tertiary]

  control_plane_url          = module.control_plane.node_url
  latchkey_binary_url        = local.edge.latchkey_binary_url
  latchkey_binary_sha256     = local.edge.latchkey_binary_sha256
  fdb_clients_version        = local.edge.fdb_clients_version
  enrolment_token_secret_arn = local.edge.enrolment_token_secret_arn
  secrets_kms_key_arn        = local.edge.secrets_kms_key_arn
  certificate_domain_name    = local.edge.certificate_domain_name
  route53_zone_id            = local.edge.route53_zone_id

  instance_type    = var.edge_instance_type
  min_size         = var.edge_capacity.min
  max_size         = var.edge_capacity.max
  desired_capacity = var.edge_capacity.desired
}

module "edge_secondary" {
  source    = "../../modules/aws-region"
  providers = { aws = aws.secondary }

  name       = var.name
  tags       = var.tags
  vpc_cidr   = var.vpc_cidrs.secondary
  peer_cidrs = [var.vpc_cidrs.primary, var.vpc_cidrs.tertiary]

  control_plane_url          = module.control_plane.node_url
  latchkey_binary_url        = local.edge.latchkey_binary_url
  latchkey_binary_sha256     = local.edge.latchkey_binary_sha256
  fdb_clients_version        = local.edge.fdb_clients_version
  enrolment_token_secret_arn = local.edge.enrolment_token_secret_arn
  secrets_kms_key_arn        = local.edge.secrets_kms_key_arn
  certificate_domain_name    = local.edge.certificate_domain_name
  route53_zone_id            = local.edge.route53_zone_id

  instance_type    = var.edge_instance_type
  min_size         = var.edge_capacity.min
  max_size         = var.edge_capacity.max
  desired_capacity = var.edge_capacity.desired
}

module "edge_tertiary" {
  source    = "../../modules/aws-region"
  providers = { aws = aws.tertiary }

  name       = var.name
  tags       = var.tags
  vpc_cidr   = var.vpc_cidrs.tertiary
  peer_cidrs = [var.vpc_cidrs.primary, var.vpc_cidrs.secondary]

  control_plane_url          = module.control_plane.node_url
  latchkey_binary_url        = local.edge.latchkey_binary_url
  latchkey_binary_sha256     = local.edge.latchkey_binary_sha256
  fdb_clients_version        = local.edge.fdb_clients_version
  enrolment_token_secret_arn = local.edge.enrolment_token_secret_arn
  secrets_kms_key_arn        = local.edge.secrets_kms_key_arn
  certificate_domain_name    = local.edge.certificate_domain_name
  route53_zone_id            = local.edge.route53_zone_id

  instance_type    = var.edge_instance_type
  min_size         = var.edge_capacity.min
  max_size         = var.edge_capacity.max
  desired_capacity = var.edge_capacity.desired
}

# --- FoundationDB and the control plane (primary region, in the primary edge VPC) ----------------

module "fdb" {
  count     = var.existing_fdb_cluster_file == null ? 1 : 0
  source    = "../../modules/fdb-cluster"
  providers = { aws = aws.primary }

  name                      = var.name
  tags                      = var.tags
  vpc_id                    = module.edge_primary.vpc_id
  subnet_ids                = module.edge_primary.subnet_ids
  node_count                = var.fdb_node_count
  instance_type             = var.fdb_instance_type
  fdb_version               = var.fdb_version
  client_security_group_ids = [module.control_plane.security_group_id]
}

module "control_plane" {
  source    = "../../modules/control-plane"
  providers = { aws = aws.primary }

  name           = var.name
  tags           = var.tags
  vpc_id         = module.edge_primary.vpc_id
  subnet_ids     = module.edge_primary.subnet_ids
  internal       = var.control_plane_internal
  allowed_cidrs  = concat(local.all_vpc_cidrs, var.admin_cidrs)
  instance_count = var.control_plane_instance_count
  instance_type  = var.control_plane_instance_type

  latchkey_binary_url    = var.latchkey_binary_url
  latchkey_binary_sha256 = var.latchkey_binary_sha256
  fdb_version            = var.fdb_version
  fdb_cluster_file       = local.fdb_cluster_file
  issuer_keys_secret_arn = var.issuer_keys_secret_arn
  secrets_kms_key_arn    = var.secrets_kms_key_arn
}

# --- One hostname, latency-routed to the nearest healthy region ----------------------------------

locals {
  edge_modules = {
    primary   = module.edge_primary
    secondary = module.edge_secondary
    tertiary  = module.edge_tertiary
  }

  edge_regions = {
    primary = {
      aws_region  = var.primary_region
      lb_dns_name = module.edge_primary.lb_dns_name
      lb_zone_id  = module.edge_primary.lb_zone_id
    }
    secondary = {
      aws_region  = var.secondary_region
      lb_dns_name = module.edge_secondary.lb_dns_name
      lb_zone_id  = module.edge_secondary.lb_zone_id
    }
    tertiary = {
      aws_region  = var.tertiary_region
      lb_dns_name = module.edge_tertiary.lb_dns_name
      lb_zone_id  = module.edge_tertiary.lb_zone_id
    }
  }
}

# evaluate_target_health: a region whose target group has no healthy node (for example, nodes
# that lost their lease answer 503 on /healthz) drops out of the answer set.
resource "aws_route53_record" "edge" {
  for_each = local.edge_regions
  provider = aws.primary

  zone_id        = var.route53_zone_id
  name           = var.hostname
  type           = "A"
  set_identifier = "${var.name}-${each.value.aws_region}"

  latency_routing_policy {
    region = each.value.aws_region
  }

  alias {
    name                   = each.value.lb_dns_name
    zone_id                = each.value.lb_zone_id
    evaluate_target_health = true
  }
}
