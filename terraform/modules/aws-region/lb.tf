locals {
  create_certificate = var.certificate_arn == null && var.certificate_domain_name != null
  https              = var.certificate_arn != null || local.create_certificate
  lb_ports           = local.https ? [80, 443] : [80]
  validation         = local.create_certificate ? tolist(aws_acm_certificate.this[0].domain_validation_options)[0] : null
  certificate_arn = (
    var.certificate_arn != null ? var.certificate_arn :
    local.create_certificate ? aws_acm_certificate_validation.this[0].certificate_arn : null
  )
}

# --- Optional ACM certificate (DNS-validated) ----------------------------------------------------

resource "aws_acm_certificate" "this" {
  count = local.create_certificate ? 1 : 0

  domain_name       = var.certificate_domain_name
  validation_method = "DNS"

  tags = merge(local.tags, { Name = var.certificate_domain_name })

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.route53_zone_id != null
      error_message = "certificate_domain_name needs route53_zone_id for the validation records."
    }
  }
}

# One name, so one validation record (a static count, known at plan time). ACM asks for the same
# record for a name in every region of an account, so several regions' modules write the same
# record: allow_overwrite lets them share it.
resource "aws_route53_record" "validation" {
  count = local.create_certificate ? 1 : 0

  allow_overwrite = true
  zone_id         = var.route53_zone_id
  name            = local.validation.resource_record_name
  type            = local.validation.resource_record_type
  records         = [local.validation.resource_record_value]
  ttl             = 300
}

resource "aws_acm_certificate_validation" "this" {
  count = local.create_certificate ? 1 : 0

  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [aws_route53_record.validation[0].fqdn]
}

# --- Application load balancer -------------------------------------------------------------------

resource "aws_lb" "this" {
  name                       = "${var.name}-edge"
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.lb.id]
  subnets                    = local.subnet_ids
  idle_timeout               = 60
  drop_invalid_header_fields = true
  enable_deletion_protection = var.enable_deletion_protection

  tags = merge(local.tags, { Name = "${var.name}-edge" })

  lifecycle {
    precondition {
      condition     = local.create_vpc || length(var.subnet_ids) >= 2
      error_message = "With vpc_id, give at least two subnet_ids in different availability zones."
    }
  }
}

# /healthz answers 200 `ok` only while the node holds a lease and has loaded the issuer keys
# (503 otherwise), so the load balancer sends calls only to nodes that can serve them.
resource "aws_lb_target_group" "node" {
  name                 = "${var.name}-edge"
  port                 = var.node_port
  protocol             = "HTTP"
  vpc_id               = local.vpc_id
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
    unhealthy_threshold = 2
  }

  tags = merge(local.tags, { Name = "${var.name}-edge" })
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = local.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.node.arn
  }

  tags = local.tags
}

# With TLS, port 80 only redirects (clients send bearer tokens; they should not do it in clear).
resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  dynamic "default_action" {
    for_each = local.https ? [1] : []

    content {
      type = "redirect"

      redirect {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }

  dynamic "default_action" {
    for_each = local.https ? [] : [1]

    content {
      type             = "forward"
      target_group_arn = aws_lb_target_group.node.arn
    }
  }

  tags = local.tags
}
