# What runs on the fleet, through the Latchkey provider: the three regions, the four example
# actors, and one invoke token for a client app. The provider needs a reachable, running control
# plane, so the first apply is two-stage (README.md).

provider "latchkey" {
  endpoint = coalesce(var.latchkey_endpoint, module.control_plane.url)
  token    = var.latchkey_admin_token
}

locals {
  # Region slot -> the latchkey_region the slot's nodes register under (--region).
  latchkey_regions = {
    primary   = module.edge_primary.region_name
    secondary = module.edge_secondary.region_name
    tertiary  = module.edge_tertiary.region_name
  }

  # Actor type -> component built by
  #   cargo build --profile wasm-actors --target wasm32-wasip2 -p latchkey-example-counter \
  #     -p latchkey-example-rate-limiter -p latchkey-example-chat-room -p latchkey-example-delegator
  actors = {
    "counter"      = "latchkey_example_counter.wasm"
    "rate-limiter" = "latchkey_example_rate_limiter.wasm"
    "chat-room"    = "latchkey_example_chat_room.wasm"
    "delegator"    = "latchkey_example_delegator.wasm"
  }
}

resource "latchkey_region" "this" {
  for_each = local.latchkey_regions

  name             = each.value
  placement_weight = lookup(var.placement_weights, each.key, 100)
  jurisdiction     = lookup(var.jurisdictions, each.key, null)
}

resource "latchkey_module" "actor" {
  for_each = local.actors

  source = "${var.actors_dir}/${each.value}"
}

resource "latchkey_deployment" "actor" {
  for_each = local.actors

  actor_type      = each.key
  version         = latchkey_module.actor[each.key].content_id
  rollback_policy = var.rollback_policy

  # Regions first, so the first activations are placed with the declared weights.
  depends_on = [latchkey_region.this]
}

# A client app's token: invoke `get` and `inc` on counters under one key prefix.
resource "latchkey_token" "client_app" {
  actor_type = "counter"
  key_prefix = var.client_token_key_prefix
  methods    = ["get", "inc"]
  rights     = ["invoke"]
  expires_in = var.client_token_expires_in

  depends_on = [latchkey_deployment.actor]
}

# The nodes the control plane knows, in every region (live and eligible flags included).
data "latchkey_nodes" "all" {}
