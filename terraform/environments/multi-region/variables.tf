# --- Regions and network -------------------------------------------------------------------------

variable "name" {
  description = "Name prefix for every resource (lowercase letters, digits and hyphens, at most 20 characters)."
  type        = string
  default     = "latchkey"
}

variable "primary_region" {
  description = "AWS region of the control plane, FoundationDB and the first edge region."
  type        = string
  default     = "us-east-1"
}

variable "secondary_region" {
  description = "AWS region of the second edge region."
  type        = string
  default     = "eu-west-1"
}

variable "tertiary_region" {
  description = "AWS region of the third edge region."
  type        = string
  default     = "ap-southeast-1"
}

variable "vpc_cidrs" {
  description = "VPC CIDR block per region slot (primary, secondary, tertiary); they must not overlap, since the VPCs are peered."
  type = object({
    primary   = string
    secondary = string
    tertiary  = string
  })
  default = {
    primary   = "10.10.0.0/16"
    secondary = "10.20.0.0/16"
    tertiary  = "10.30.0.0/16"
  }
}

variable "tags" {
  description = "Tags added to every AWS resource (on top of the providers' default tags)."
  type        = map(string)
  default     = {}
}

# --- Public hostname -----------------------------------------------------------------------------

variable "route53_zone_id" {
  description = "Route 53 public hosted zone holding hostname (latency records and ACM validation records)."
  type        = string
}

variable "hostname" {
  description = "Public hostname clients call (for example edge.example.com), latency-routed to the nearest healthy region."
  type        = string
}

variable "create_certificates" {
  description = "Create a DNS-validated ACM certificate for hostname in every region and serve HTTPS. False: plain HTTP on port 80."
  type        = bool
  default     = true
}

# --- Artifacts and secrets -----------------------------------------------------------------------

variable "latchkey_binary_url" {
  description = "https:// or s3:// URL of the `latchkey` binary (Linux x86_64) built with FoundationDB support; control plane and edge nodes run it."
  type        = string
}

variable "latchkey_binary_sha256" {
  description = "Expected SHA-256 (hex) of the binary. Null: not checked."
  type        = string
  default     = null
}

variable "enrolment_token_secret_arn" {
  description = "Full ARN of the Secrets Manager secret (in the primary region) holding the token edge nodes enrol with (today: the admin token)."
  type        = string
}

variable "issuer_keys_secret_arn" {
  description = "Full ARN of the Secrets Manager secret (in the primary region) holding the issuer keys as a JSON object { \"issuer-<key_id>.key\": \"<contents>\" }."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "Customer-managed KMS key of both secrets, if any. Null: the AWS-managed key."
  type        = string
  default     = null
}

# --- FoundationDB --------------------------------------------------------------------------------

variable "fdb_version" {
  description = "FoundationDB version (server packages, and the client library on every host running the binary)."
  type        = string
  default     = "7.3.69"
}

variable "existing_fdb_cluster_file" {
  description = "Cluster file contents of an existing FoundationDB cluster reachable from the primary VPC. Null: create one with the fdb-cluster module. (With an existing cluster, allow the control plane's security group in yourself.)"
  type        = string
  default     = null
}

variable "fdb_node_count" {
  description = "Number of FoundationDB nodes when the environment creates the cluster."
  type        = number
  default     = 3
}

variable "fdb_instance_type" {
  description = "EC2 instance type of the FoundationDB nodes."
  type        = string
  default     = "m6i.large"
}

# --- Control plane -------------------------------------------------------------------------------

variable "control_plane_instance_count" {
  description = "Number of control plane instances."
  type        = number
  default     = 2
}

variable "control_plane_instance_type" {
  description = "EC2 instance type of the control plane."
  type        = string
  default     = "m6i.large"
}

variable "control_plane_internal" {
  description = "Internal control plane load balancer (reached by edge nodes over VPC peering; operators and Terraform need a VPN or an SSM port forward). False: internet-facing, limited to the VPC CIDRs and admin_cidrs."
  type        = bool
  default     = true
}

variable "admin_cidrs" {
  description = "Extra CIDR blocks allowed to reach the control plane load balancer (operators, CI running Terraform, a VPN)."
  type        = list(string)
  default     = []
}

# --- Edge nodes ----------------------------------------------------------------------------------

variable "edge_instance_type" {
  description = "EC2 instance type of the edge nodes."
  type        = string
  default     = "c6i.large"
}

variable "edge_capacity" {
  description = "Autoscaling group size of the edge nodes, in every region."
  type = object({
    min     = number
    max     = number
    desired = number
  })
  default = {
    min     = 2
    max     = 6
    desired = 2
  }
}

# --- The Latchkey provider -----------------------------------------------------------------------

variable "latchkey_endpoint" {
  description = "Control plane URL the Latchkey provider uses (for example http://localhost:7070 through an SSM port forward). Null: the control-plane module's url output (reachable only from inside the VPCs when the load balancer is internal)."
  type        = string
  default     = null
}

variable "latchkey_admin_token" {
  description = "Admin token for the Latchkey provider. Null: the provider reads LATCHKEY_TOKEN."
  type        = string
  default     = null
  sensitive   = true
}

variable "actors_dir" {
  description = "Directory holding the example actors' .wasm files (cargo build --profile wasm-actors --target wasm32-wasip2 ...), relative to this directory or absolute. Null: the latchkey-actors module's default, this repository's target/wasm32-wasip2/wasm-actors."
  type        = string
  default     = null
}

# The defaults of these live in the latchkey-actors module (null here: its default).

variable "placement_weights" {
  description = "placement_weight of each latchkey_region, by region slot (primary, secondary, tertiary); a missing slot gets 100, 0 stops new placements there. Null: the module's default, 100 everywhere."
  type        = map(number)
  default     = null
}

variable "jurisdictions" {
  description = "Optional jurisdiction tag of each latchkey_region, by region slot (primary, secondary, tertiary); a missing slot has none. Null: the module's default, none."
  type        = map(string)
  default     = null
}

variable "rollback_policy" {
  description = "Automatic rollback policy of every example deployment. Null: the module's default, { max_error_rate = 0.05, window_secs = 60, min_calls = 100 } (the control plane's own default)."
  type = object({
    max_error_rate = number
    window_secs    = number
    min_calls      = number
  })
  default = null
}

variable "client_token_key_prefix" {
  description = "Key prefix the client app's counter token is limited to. Null: the module's default, \"user/\"."
  type        = string
  default     = null
}

variable "client_token_expires_in" {
  description = "Lifetime of the client app's token, in seconds. Null: the module's default, 86400."
  type        = number
  default     = null
}
