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
  tags        = merge(var.tags, { "latchkey:role" = "foundationdb" })
  description = replace(var.name, "-", "_")

  # The network interfaces exist before the instances, so their addresses are known when the
  # user-data is rendered: every node gets the same cluster file. The id is derived from the
  # addresses (hex is a valid cluster id), so the file is a pure function of the interfaces.
  ips          = aws_network_interface.node[*].private_ip
  cluster_id   = substr(sha256(join(",", local.ips)), 0, 16)
  cluster_file = "${local.description}:${local.cluster_id}@${join(",", [for ip in local.ips : "${ip}:${var.port}"])}"

  min_nodes = { single = 1, double = 2, triple = 3 }
}

# --- Security group ------------------------------------------------------------------------------

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-fdb-"
  description = "FoundationDB cluster for Latchkey"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-fdb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "members" {
  security_group_id            = aws_security_group.this.id
  description                  = "FoundationDB between cluster members"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = aws_security_group.this.id
}

resource "aws_vpc_security_group_ingress_rule" "client_groups" {
  count = length(var.client_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "FoundationDB clients"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = var.client_security_group_ids[count.index]
}

resource "aws_vpc_security_group_ingress_rule" "client_cidrs" {
  count = length(var.client_cidrs)

  security_group_id = aws_security_group.this.id
  description       = "FoundationDB clients"
  ip_protocol       = "tcp"
  from_port         = var.port
  to_port           = var.port
  cidr_ipv4         = var.client_cidrs[count.index]
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.this.id
  description       = "All outbound (cluster members, package downloads)"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# --- IAM (Session Manager only) ------------------------------------------------------------------

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  count = var.enable_ssm ? 1 : 0

  name               = "${var.name}-fdb"
  description        = "Latchkey FoundationDB nodes"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = var.enable_ssm ? 1 : 0

  role       = aws_iam_role.node[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  count = var.enable_ssm ? 1 : 0

  name = "${var.name}-fdb"
  role = aws_iam_role.node[0].name

  tags = local.tags
}

# --- Nodes ---------------------------------------------------------------------------------------

resource "aws_network_interface" "node" {
  count = var.node_count

  subnet_id       = var.subnet_ids[count.index % length(var.subnet_ids)]
  private_ips     = var.private_ips == null ? null : [var.private_ips[count.index]]
  security_groups = [aws_security_group.this.id]
  description     = "${var.name} FoundationDB node ${count.index}"

  tags = merge(local.tags, { Name = "${var.name}-fdb-${count.index}" })

  lifecycle {
    precondition {
      condition     = var.private_ips == null ? true : length(var.private_ips) == var.node_count
      error_message = "private_ips must have one address per node (node_count)."
    }

    precondition {
      condition     = var.node_count >= local.min_nodes[var.redundancy_mode]
      error_message = "redundancy_mode ${var.redundancy_mode} needs at least ${local.min_nodes[var.redundancy_mode]} nodes."
    }
  }
}

resource "aws_eip" "node" {
  count = var.assign_public_ip ? var.node_count : 0

  domain            = "vpc"
  network_interface = aws_network_interface.node[count.index].id

  tags = merge(local.tags, { Name = "${var.name}-fdb-${count.index}" })
}

resource "aws_instance" "node" {
  count = var.node_count

  ami                  = data.aws_ami.this.id
  instance_type        = var.instance_type
  iam_instance_profile = var.enable_ssm ? aws_iam_instance_profile.node[0].name : null

  user_data = templatefile("${path.module}/templates/fdb-node.sh.tftpl", {
    fdb_version     = var.fdb_version
    cluster_file    = local.cluster_file
    first_node      = count.index == 0
    redundancy_mode = var.redundancy_mode
    storage_engine  = var.storage_engine
  })

  network_interface {
    network_interface_id = aws_network_interface.node[count.index].id
    device_index         = 0
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size = var.root_volume_size
    volume_type = "gp3"
    iops        = var.root_volume_iops
    encrypted   = true
  }

  tags        = merge(local.tags, { Name = "${var.name}-fdb-${count.index}" })
  volume_tags = merge(local.tags, { Name = "${var.name}-fdb-${count.index}" })

  # The data is on the root volume: never replace a node because a newer AMI appeared or the
  # bootstrap script changed. Upgrades are done on the nodes (see README).
  lifecycle {
    ignore_changes = [ami, user_data]
  }

  depends_on = [aws_eip.node]
}
