# What runs on a Latchkey fleet, through the Latchkey provider only: a latchkey_region per region
# slot, a module and a deployment per actor type, and one invoke token for a client app. The
# caller configures the `latchkey` provider (endpoint and admin token); the control plane must be
# running when this is planned.

locals {
  # Null: the example actors this repository builds, wherever this module is called from.
  actors_dir = coalesce(var.actors_dir, "${path.module}/../../../target/wasm32-wasip2/wasm-actors")
}

resource "latchkey_region" "this" {
  for_each = var.regions

  name             = each.value
  placement_weight = lookup(var.placement_weights, each.key, 100)
  jurisdiction     = lookup(var.jurisdictions, each.key, null)
}

resource "latchkey_module" "actor" {
  for_each = var.actors

  source = "${local.actors_dir}/${each.value}"
}

resource "latchkey_deployment" "actor" {
  for_each = var.actors

  actor_type      = each.key
  version         = latchkey_module.actor[each.key].content_id
  rollback_policy = var.rollback_policy

  # Regions first, so the first activations are placed with the declared weights.
  depends_on = [latchkey_region.this]
}

# A client app's token: invoke `get` and `inc` on counters under one key prefix.
resource "latchkey_token" "client_app" {
  actor_type = var.client_token_actor_type
  key_prefix = var.client_token_key_prefix
  methods    = var.client_token_methods
  rights     = ["invoke"]
  expires_in = var.client_token_expires_in

  depends_on = [latchkey_deployment.actor]
}

# The nodes the control plane knows, in every region (live and eligible flags included).
data "latchkey_nodes" "all" {}
