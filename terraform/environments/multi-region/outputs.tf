output "public_url" {
  description = "Public URL clients call (latency-routed to the nearest healthy region), for example POST <public_url>/v1/actors/counter/user%2F42/inc."
  value       = "${var.create_certificates ? "https" : "http"}://${var.hostname}"
}

output "hostname" {
  description = "Public hostname with the latency records."
  value       = var.hostname
}

output "client_token" {
  description = "The client app's token (invoke get/inc on counter keys under client_token_key_prefix); send it as Authorization: Bearer <token>."
  value       = module.latchkey_actors.client_token
  sensitive   = true
}

output "client_token_id" {
  description = "Id of the client app's token (to revoke it)."
  value       = module.latchkey_actors.client_token_id
}

output "client_token_expires_at" {
  description = "Expiry of the client app's token."
  value       = module.latchkey_actors.client_token_expires_at
}

output "actor_versions" {
  description = "Deployed content id of each example actor type."
  value       = module.latchkey_actors.actor_versions
}

output "control_plane_url" {
  description = "Control plane URL (the control-plane module's url)."
  value       = module.control_plane.url
}

output "control_plane_node_url" {
  description = "Control plane URL the edge nodes use (internal load balancer, plain HTTP)."
  value       = module.control_plane.node_url
}

output "control_plane_asg_name" {
  description = "Autoscaling group of the control plane (pick an instance of it for an SSM port forward)."
  value       = module.control_plane.asg_name
}

output "fdb_cluster_file" {
  description = "FoundationDB cluster file contents the control plane uses."
  value       = local.fdb_cluster_file
}

output "edge_regions" {
  description = "Per region slot: AWS region, latchkey region, load balancer DNS name, autoscaling group."
  value = {
    for slot, m in local.edge_modules : slot => {
      aws_region    = m.aws_region
      latchkey_name = m.region_name
      lb_dns_name   = m.lb_dns_name
      asg_name      = m.asg_name
    }
  }
}

output "edge_node_role_arns" {
  description = "IAM roles of the edge nodes (the principals to allow in the enrolment secret's resource policy)."
  value       = [for m in local.edge_modules : m.node_role_arn]
}

output "control_plane_role_arn" {
  description = "IAM role of the control plane (the principal to allow in the issuer-keys secret's resource policy)."
  value       = module.control_plane.role_arn
}

output "edge_nodes" {
  description = "Nodes registered with the control plane (id, region, address, epoch, live, eligible), as read by the latchkey_nodes data source."
  value       = module.latchkey_actors.nodes
}
