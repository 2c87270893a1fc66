locals {
  https    = var.certificate_arn != null
  lb_ports = local.https ? [var.port, 443] : [var.port]

  node_url = "http://${aws_lb.this.dns_name}:${var.port}"
  url = (
    local.https && var.domain_name != null ? "https://${var.domain_name}" :
    var.domain_name != null && var.route53_zone_id != null ? "http://${var.domain_name}:${var.port}" :
    local.node_url
  )
}

resource "aws_lb" "this" {
  name                       = "${var.name}-cp"
  load_balancer_type         = "application"
  internal                   = var.internal
  security_groups            = [aws_security_group.lb.id]
  subnets                    = var.subnet_ids
  idle_timeout               = 60
  drop_invalid_header_fields = true
  enable_deletion_protection = var.enable_deletion_protection

  tags = merge(local.tags, { Name = "${var.name}-cp" })
}

# /healthz answers 200 `ok` while the process serves.
resource "aws_lb_target_group" "this" {
  name                 = "${var.name}-cp"
  port                 = var.port
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  target_type          = "instance"
  deregistration_delay = 30

  health_check {
    enabled             = true
    protocol            = "HTTP"
    path                = "/healthz"
    port                = "traffic-port"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = merge(local.tags, { Name = "${var.name}-cp" })
}

# Plain HTTP on the control-plane port: what edge nodes use (inside the VPCs).
resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.port
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = local.tags
}

# HTTPS for operators and Terraform, when a certificate is given.
resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = local.tags
}

resource "aws_route53_record" "this" {
  count = var.domain_name != null && var.route53_zone_id != null ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = true
  }
}
