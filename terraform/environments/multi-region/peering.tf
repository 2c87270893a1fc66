# Inter-region VPC peering between the three edge VPCs (a full mesh of three connections): nodes
# forward calls to each other's private advertise addresses (PRIVATE_IP:8080, allowed by each
# region's peer_cidrs), and every region's nodes reach the internal control plane load balancer
# (whose DNS name resolves to private addresses). AWS encrypts inter-region peering traffic.

resource "aws_vpc_peering_connection" "primary_secondary" {
  provider = aws.primary

  vpc_id      = module.edge_primary.vpc_id
  peer_vpc_id = module.edge_secondary.vpc_id
  peer_region = var.secondary_region

  tags = merge(var.tags, { Name = "${var.name}-primary-secondary" })
}

resource "aws_vpc_peering_connection_accepter" "primary_secondary" {
  provider = aws.secondary

  vpc_peering_connection_id = aws_vpc_peering_connection.primary_secondary.id
  auto_accept               = true

  tags = merge(var.tags, { Name = "${var.name}-primary-secondary" })
}

resource "aws_vpc_peering_connection" "primary_tertiary" {
  provider = aws.primary

  vpc_id      = module.edge_primary.vpc_id
  peer_vpc_id = module.edge_tertiary.vpc_id
  peer_region = var.tertiary_region

  tags = merge(var.tags, { Name = "${var.name}-primary-tertiary" })
}

resource "aws_vpc_peering_connection_accepter" "primary_tertiary" {
  provider = aws.tertiary

  vpc_peering_connection_id = aws_vpc_peering_connection.primary_tertiary.id
  auto_accept               = true

  tags = merge(var.tags, { Name = "${var.name}-primary-tertiary" })
}

resource "aws_vpc_peering_connection" "secondary_tertiary" {
  provider = aws.secondary

  vpc_id      = module.edge_secondary.vpc_id
  peer_vpc_id = module.edge_tertiary.vpc_id
  peer_region = var.tertiary_region

  tags = merge(var.tags, { Name = "${var.name}-secondary-tertiary" })
}

resource "aws_vpc_peering_connection_accepter" "secondary_tertiary" {
  provider = aws.tertiary

  vpc_peering_connection_id = aws_vpc_peering_connection.secondary_tertiary.id
  auto_accept               = true

  tags = merge(var.tags, { Name = "${var.name}-secondary-tertiary" })
}

# Routes to the other two VPCs in each region's public route table. They use the accepter's id
# (the same connection id) so they are created once the connection is active.

resource "aws_route" "primary" {
  provider = aws.primary
  for_each = {
    secondary = { cidr = var.vpc_cidrs.secondary, peering = aws_vpc_peering_connection_accepter.primary_secondary.id }
    tertiary  = { cidr = var.vpc_cidrs.tertiary, peering = aws_vpc_peering_connection_accepter.primary_tertiary.id }
  }

  route_table_id            = module.edge_primary.route_table_id
  destination_cidr_block    = each.value.cidr
  vpc_peering_connection_id = each.value.peering
}

resource "aws_route" "secondary" {
  provider = aws.secondary
  for_each = {
    primary  = { cidr = var.vpc_cidrs.primary, peering = aws_vpc_peering_connection_accepter.primary_secondary.id }
    tertiary = { cidr = var.vpc_cidrs.tertiary, peering = aws_vpc_peering_connection_accepter.secondary_tertiary.id }
  }

  route_table_id            = module.edge_secondary.route_table_id
  destination_cidr_block    = each.value.cidr
  vpc_peering_connection_id = each.value.peering
}

resource "aws_route" "tertiary" {
  provider = aws.tertiary
  for_each = {
    primary   = { cidr = var.vpc_cidrs.primary, peering = aws_vpc_peering_connection_accepter.primary_tertiary.id }
    secondary = { cidr = var.vpc_cidrs.secondary, peering = aws_vpc_peering_connection_accepter.secondary_tertiary.id }
  }

  route_table_id            = module.edge_tertiary.route_table_id
  destination_cidr_block    = each.value.cidr
  vpc_peering_connection_id = each.value.peering
}
