# What runs on the fleet, through the Latchkey provider: the three regions, the four example
# actors, and one invoke token for a client app, all in the latchkey-actors module (which the
# provider's end-to-end test applies, with its defaults, against a local control plane). The
# provider needs a reachable, running control plane, so the first apply is two-stage (README.md).

provider "latchkey" {
  endpoint = coalesce(var.latchkey_endpoint, module.control_plane.url)
  token    = var.latchkey_admin_token
}

module "latchkey_actors" {
  source = "../../modules/latchkey-actors"

  # Region slot -> the latchkey_region the slot's nodes register under (--region).
  regions = {
    primary   = module.edge_primary.region_name
    secondary = module.edge_secondary.region_name
    tertiary  = module.edge_tertiary.region_name
  }

  # Null (the default of each of these variables): the module's default.
  actors_dir              = var.actors_dir
  placement_weights       = var.placement_weights
  jurisdictions           = var.jurisdictions
  rollback_policy         = var.rollback_policy
  client_token_key_prefix = var.client_token_key_prefix
  client_token_expires_in = var.client_token_expires_in
}

# Where these resources were before they moved into the module.
moved {
  from = latchkey_region.this
  to   = module.latchkey_actors.latchkey_region.this
}

moved {
  from = latchkey_module.actor
  to   = module.latchkey_actors.latchkey_module.actor
}

moved {
  from = latchkey_deployment.actor
  to   = module.latchkey_actors.latchkey_deployment.actor
}

moved {
  from = latchkey_token.client_app
  to   = module.latchkey_actors.latchkey_token.client_app
}
