variable "regions" {
  description = "Region slot (for example primary, secondary, tertiary) -> name of the latchkey_region its edge nodes register under (their --region)."
  type        = map(string)
  nullable    = false
}

variable "actors" {
  description = "Actor type -> component file name in actors_dir; each becomes a latchkey_module and a latchkey_deployment."
  type        = map(string)
  nullable    = false
  default = {
    "counter"      = "latchkey_example_counter.wasm"
    "rate-limiter" = "latchkey_example_rate_limiter.wasm"
    "chat-room"    = "latchkey_example_chat_room.wasm"
    "delegator"    = "latchkey_example_delegator.wasm"
  }
}

variable "actors_dir" {
  description = "Directory holding the components (cargo build --profile wasm-actors --target wasm32-wasip2 ...), relative to the directory Terraform runs in, or absolute. Null: this repository's target/wasm32-wasip2/wasm-actors."
  type        = string
  default     = null
}

variable "placement_weights" {
  description = "placement_weight of each latchkey_region, by region slot; a missing slot gets 100, 0 stops new placements there."
  type        = map(number)
  nullable    = false
  default = {
    primary   = 100
    secondary = 100
    tertiary  = 100
  }
}

variable "jurisdictions" {
  description = "Optional jurisdiction tag of each latchkey_region, by region slot; a missing slot has none."
  type        = map(string)
  nullable    = false
  default     = {}
}

variable "rollback_policy" {
  description = "Automatic rollback policy of every deployment: roll back when more than max_error_rate of the calls of the last window_secs seconds failed, once there were at least min_calls."
  type = object({
    max_error_rate = number
    window_secs    = number
    min_calls      = number
  })
  nullable = false
  default = {
    max_error_rate = 0.05
    window_secs    = 60
    min_calls      = 100
  }
}

variable "client_token_actor_type" {
  description = "Actor type the client app's token may invoke."
  type        = string
  nullable    = false
  default     = "counter"
}

variable "client_token_methods" {
  description = "Methods the client app's token may invoke."
  type        = list(string)
  nullable    = false
  default     = ["get", "inc"]
}

variable "client_token_key_prefix" {
  description = "Key prefix the client app's token is limited to."
  type        = string
  nullable    = false
  default     = "user/"
}

variable "client_token_expires_in" {
  description = "Lifetime of the client app's token, in seconds."
  type        = number
  nullable    = false
  default     = 86400
}
