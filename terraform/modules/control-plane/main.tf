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
  aws_region     = data.aws_region.current.name
  tags           = merge(var.tags, { "latchkey:role" = "control-plane" })
  binary_from_s3 = startswith(var.latchkey_binary_url, "s3://")

  user_data = templatefile("${path.module}/templates/control-plane.sh.tftpl", {
    aws_region         = local.aws_region
    port               = var.port
    binary_url         = var.latchkey_binary_url
    binary_sha256      = var.latchkey_binary_sha256 == null ? "" : lower(var.latchkey_binary_sha256)
    fdb_version        = var.fdb_version
    fdb_cluster_file   = trimspace(var.fdb_cluster_file)
    keys_secret        = var.issuer_keys_secret_arn
    keys_secret_region = split(":", var.issuer_keys_secret_arn)[3]
    extra_args         = length(var.extra_args) == 0 ? "" : " ${join(" ", var.extra_args)}"
  })
}

# --- Security groups -----------------------------------------------------------------------------

resource "aws_security_group" "lb" {
  name_prefix = "${var.name}-cp-lb-"
  description = "Latchkey control plane load balancer"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-cp-lb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb" {
  for_each = {
    for pair in setproduct(local.lb_ports, var.allowed_cidrs) : "${pair[0]}-${pair[1]}" => {
      port = pair[0]
      cidr = pair[1]
    }
  }

  security_group_id = aws_security_group.lb.id
  description       = "Nodes, operators and Terraform on ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "lb_to_instances" {
  security_group_id            = aws_security_group.lb.id
  description                  = "To the control plane instances"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = aws_security_group.instance.id
}

resource "aws_security_group" "instance" {
  name_prefix = "${var.name}-cp-"
  description = "Latchkey control plane instances"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-cp" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "instance_from_lb" {
  security_group_id            = aws_security_group.instance.id
  description                  = "API and health checks from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = aws_security_group.lb.id
}

# Outbound: FoundationDB, Secrets Manager, package and binary downloads.
resource "aws_vpc_security_group_egress_rule" "instance_all" {
  security_group_id = aws_security_group.instance.id
  description       = "All outbound"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# --- IAM -----------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "instance" {
  statement {
    sid     = "ReadIssuerKeys"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      var.issuer_keys_secret_arn,
      "${var.issuer_keys_secret_arn}-??????",
    ]
  }

  dynamic "statement" {
    for_each = var.secrets_kms_key_arn == null ? [] : [var.secrets_kms_key_arn]

    content {
      sid       = "DecryptIssuerKeys"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.binary_from_s3 ? [trimprefix(var.latchkey_binary_url, "s3://")] : []

    content {
      sid       = "ReadBinary"
      actions   = ["s3:GetObject"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${statement.value}"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name               = "${var.name}-control-plane"
  description        = "Latchkey control plane instances"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json

  tags = local.tags
}

resource "aws_iam_role_policy" "instance" {
  name   = "latchkey-control-plane"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.instance.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = var.enable_ssm ? 1 : 0

  role       = aws_iam_role.instance.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-control-plane"
  role = aws_iam_role.instance.name

  tags = local.tags
}

# --- Launch template and autoscaling group (fixed size) ------------------------------------------

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-cp-"
  description            = "Latchkey control plane"
  image_id               = data.aws_ami.this.id
  instance_type          = var.instance_type
  update_default_version = true
  user_data              = base64encode(local.user_data)

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }

  network_interfaces {
    device_index                = 0
    associate_public_ip_address = var.associate_public_ip_address
    security_groups             = [aws_security_group.instance.id]
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
    tags          = merge(local.tags, { Name = "${var.name}-control-plane" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-control-plane" })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  name                      = "${var.name}-control-plane"
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = var.instance_count
  max_size                  = var.instance_count
  desired_capacity          = var.instance_count
  health_check_type         = "ELB"
  health_check_grace_period = var.health_check_grace_period
  target_group_arns         = [aws_lb_target_group.this.arn]

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 50
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-control-plane" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }
}
