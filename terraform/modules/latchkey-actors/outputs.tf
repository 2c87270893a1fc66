output "client_token" {
  description = "The client app's token (invoke client_token_methods on client_token_actor_type keys under client_token_key_prefix); send it as Authorization: Bearer <token>."
  value       = latchkey_token.client_app.token
  sensitive   = true
}

output "client_token_id" {
  description = "Id of the client app's token (to revoke it)."
  value       = latchkey_token.client_app.token_id
}

output "client_token_expires_at" {
  description = "Expiry of the client app's token (Unix seconds)."
  value       = latchkey_token.client_app.expires_at
}

output "actor_versions" {
  description = "Deployed content id of each actor type."
  value       = { for actor_type, d in latchkey_deployment.actor : actor_type => d.version }
}

output "region_names" {
  description = "Name of the latchkey_region of each region slot."
  value       = { for slot, r in latchkey_region.this : slot => r.name }
}

output "nodes" {
  description = "Nodes registered with the control plane (id, region, address, epoch, live, eligible), as read by the latchkey_nodes data source."
  value       = data.latchkey_nodes.all.nodes
}
