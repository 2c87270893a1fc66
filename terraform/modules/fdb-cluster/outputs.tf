output "cluster_file" {
  description = "Contents of the cluster file (description:id@ip:port,...), for the control plane's fdb_cluster_file."
  value       = local.cluster_file
}

output "security_group_id" {
  description = "Security group of the FoundationDB nodes."
  value       = aws_security_group.this.id
}

output "private_ips" {
  description = "Private IPs of the nodes (all coordinators)."
  value       = local.ips
}

output "instance_ids" {
  description = "EC2 instance ids of the nodes (node 0 ran `configure new`)."
  value       = aws_instance.node[*].id
}

output "network_interface_ids" {
  description = "Network interfaces holding the nodes' fixed addresses."
  value       = aws_network_interface.node[*].id
}
