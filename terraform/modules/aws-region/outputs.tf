output "region_name" {
  description = "Latchkey region name the nodes register under (declare it with latchkey_region)."
  value       = local.region_name
}

output "aws_region" {
  description = "AWS region of this module's resources."
  value       = local.aws_region
}

output "lb_dns_name" {
  description = "DNS name of the edge load balancer (target of a latency-routed alias record)."
  value       = aws_lb.this.dns_name
}

output "lb_zone_id" {
  description = "Route 53 hosted zone id of the edge load balancer (for alias records)."
  value       = aws_lb.this.zone_id
}

output "lb_arn" {
  description = "ARN of the edge load balancer."
  value       = aws_lb.this.arn
}

output "endpoint" {
  description = "URL of the load balancer itself (https:// when a certificate is attached; the certificate names the public hostname, not this DNS name)."
  value       = "${local.https ? "https" : "http"}://${aws_lb.this.dns_name}"
}

output "target_group_arn" {
  description = "ARN of the edge nodes' target group."
  value       = aws_lb_target_group.node.arn
}

output "asg_name" {
  description = "Name of the edge nodes' autoscaling group."
  value       = aws_autoscaling_group.node.name
}

output "launch_template_id" {
  description = "Id of the edge nodes' launch template."
  value       = aws_launch_template.node.id
}

output "node_security_group_id" {
  description = "Security group of the edge nodes."
  value       = aws_security_group.node.id
}

output "lb_security_group_id" {
  description = "Security group of the edge load balancer."
  value       = aws_security_group.lb.id
}

output "node_role_arn" {
  description = "ARN of the edge nodes' IAM role (allow it, and only it, in the enrolment secret's resource policy)."
  value       = aws_iam_role.node.arn
}

output "node_role_name" {
  description = "Name of the edge nodes' IAM role."
  value       = aws_iam_role.node.name
}

output "certificate_arn" {
  description = "ACM certificate on the HTTPS listener (null without TLS)."
  value       = local.certificate_arn
}

output "vpc_id" {
  description = "VPC of the nodes (created or given). Depends on the internet route, so consumers launching instances get outbound access."
  value       = local.vpc_id
  depends_on  = [aws_route.internet, aws_route_table_association.public]
}

output "vpc_cidr" {
  description = "CIDR block of the VPC (what other regions put in peer_cidrs)."
  value       = local.vpc_cidr
}

output "subnet_ids" {
  description = "Subnets of the load balancer and the nodes (created or given)."
  value       = local.subnet_ids
  depends_on  = [aws_route.internet, aws_route_table_association.public]
}

output "route_table_id" {
  description = "Route table of the created public subnets, for VPC peering routes (null with an existing VPC)."
  value       = local.create_vpc ? aws_route_table.public[0].id : null
}
