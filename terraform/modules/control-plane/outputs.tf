output "url" {
  description = "Control plane URL for operators and the Latchkey Terraform provider: https://domain_name with a certificate and domain_name, http://domain_name:port with a Route 53 record, else node_url."
  value       = local.url
}

output "node_url" {
  description = "Control plane URL for edge nodes (--control-plane): plain HTTP on the load balancer's DNS name and port."
  value       = local.node_url
}

output "lb_dns_name" {
  description = "DNS name of the control plane load balancer."
  value       = aws_lb.this.dns_name
}

output "lb_zone_id" {
  description = "Route 53 hosted zone id of the control plane load balancer."
  value       = aws_lb.this.zone_id
}

output "lb_arn" {
  description = "ARN of the control plane load balancer."
  value       = aws_lb.this.arn
}

output "security_group_id" {
  description = "Security group of the control plane instances (allow it into FoundationDB)."
  value       = aws_security_group.instance.id
}

output "lb_security_group_id" {
  description = "Security group of the control plane load balancer."
  value       = aws_security_group.lb.id
}

output "asg_name" {
  description = "Name of the control plane autoscaling group."
  value       = aws_autoscaling_group.this.name
}

output "role_arn" {
  description = "ARN of the control plane instances' IAM role (allow it, and only it, in the issuer-keys secret's resource policy)."
  value       = aws_iam_role.instance.arn
}
