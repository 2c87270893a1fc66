data "aws_region" "current" {}

data "aws_partition" "current" {}

# Canonical's newest Ubuntu 24.04 image, or the image given in ami_id.
data "aws_ami" "this" {
  most_recent = true
  owners      = var.ami_id == null ? ["099720109477"] : null

  filter {
    name   = var.ami_id == null ? "name" : "image-id"
    values = [var.ami_id == null ? "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*" : var.ami_id]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  aws_region  = data.aws_region.current.name
  region_name = coalesce(var.region_name, local.aws_region)
  create_vpc  = var.vpc_id == null

  vpc_id     = local.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  vpc_cidr   = local.create_vpc ? aws_vpc.this[0].cidr_block : data.aws_vpc.existing[0].cidr_block
  subnet_ids = local.create_vpc ? aws_subnet.public[*].id : var.subnet_ids

  tags = merge(var.tags, {
    "latchkey:region" = local.region_name
  })

  binary_from_s3 = startswith(var.latchkey_binary_url, "s3://")
  # arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME: the CLI must call the secret's region.
  enrolment_secret_region = split(":", var.enrolment_token_secret_arn)[3]

  user_data = templatefile("${path.module}/templates/edge-node.sh.tftpl", {
    aws_region          = local.aws_region
    region_name         = local.region_name
    node_port           = var.node_port
    control_plane_url   = trimsuffix(var.control_plane_url, "/")
    binary_url          = var.latchkey_binary_url
    binary_sha256       = var.latchkey_binary_sha256 == null ? "" : lower(var.latchkey_binary_sha256)
    fdb_clients_version = var.fdb_clients_version == null ? "" : var.fdb_clients_version
    enrolment_secret    = var.enrolment_token_secret_arn
    enrolment_region    = local.enrolment_secret_region
    node_args = join(" ", concat([
      "--memory-limit-mb", tostring(var.memory_limit_mb),
      "--cpu-limit-ms", tostring(var.cpu_limit_ms),
      "--max-activations", tostring(var.max_activations),
      "--idle-timeout-secs", tostring(var.idle_timeout_secs),
    ], var.extra_args))
  })
}

# --- Security groups -----------------------------------------------------------------------------

resource "aws_security_group" "lb" {
  name_prefix = "${var.name}-edge-lb-"
  description = "Latchkey edge load balancer (${local.region_name})"
  vpc_id      = local.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-edge-lb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb" {
  for_each = {
    for pair in setproduct(local.lb_ports, var.ingress_cidrs) : "${pair[0]}-${pair[1]}" => {
      port = pair[0]
      cidr = pair[1]
    }
  }

  security_group_id = aws_security_group.lb.id
  description       = "Clients on ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "lb_to_nodes" {
  security_group_id            = aws_security_group.lb.id
  description                  = "To the edge nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.node_port
  to_port                      = var.node_port
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_security_group" "node" {
  name_prefix = "${var.name}-edge-node-"
  description = "Latchkey edge nodes (${local.region_name})"
  vpc_id      = local.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-edge-node" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "node_from_lb" {
  security_group_id            = aws_security_group.node.id
  description                  = "Client calls and health checks from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.node_port
  to_port                      = var.node_port
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_ingress_rule" "node_from_nodes" {
  security_group_id            = aws_security_group.node.id
  description                  = "Forwarded calls from nodes in this region"
  ip_protocol                  = "tcp"
  from_port                    = var.node_port
  to_port                      = var.node_port
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_vpc_security_group_ingress_rule" "node_from_peers" {
  count = length(var.peer_cidrs)

  security_group_id = aws_security_group.node.id
  description       = "Forwarded calls from nodes in other regions"
  ip_protocol       = "tcp"
  from_port         = var.node_port
  to_port           = var.node_port
  cidr_ipv4         = var.peer_cidrs[count.index]
}

# Outbound: the control plane, other nodes, Secrets Manager, and package/binary downloads.
resource "aws_vpc_security_group_egress_rule" "node_all" {
  security_group_id = aws_security_group.node.id
  description       = "All outbound"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# --- Launch template and autoscaling group -------------------------------------------------------

resource "aws_launch_template" "node" {
  name_prefix            = "${var.name}-edge-"
  description            = "Latchkey edge node (${local.region_name})"
  image_id               = data.aws_ami.this.id
  instance_type          = var.instance_type
  update_default_version = true
  user_data              = base64encode(local.user_data)

  iam_instance_profile {
    arn = aws_iam_instance_profile.node.arn
  }

  network_interfaces {
    device_index                = 0
    associate_public_ip_address = var.associate_public_ip_address
    security_groups             = [aws_security_group.node.id]
    delete_on_termination       = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = data.aws_ami.this.root_device_name

    ebs {
      volume_size           = var.root_volume_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-edge-${local.region_name}", "latchkey:role" = "edge-node" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-edge-${local.region_name}" })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "node" {
  name                      = "${var.name}-edge-${local.aws_region}"
  vpc_zone_identifier       = local.subnet_ids
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  health_check_type         = var.asg_health_check_type
  health_check_grace_period = var.health_check_grace_period
  target_group_arns         = [aws_lb_target_group.node.arn]

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  # A new launch template version (binary URL, AMI, flags) replaces nodes a few at a time. Each
  # new instance enrols as a new node (its instance id); activations move off drained nodes.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 50
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-edge-${local.region_name}" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }

  lifecycle {
    precondition {
      condition     = var.min_size <= var.desired_capacity && var.desired_capacity <= var.max_size
      error_message = "Need min_size <= desired_capacity <= max_size."
    }
  }
}
