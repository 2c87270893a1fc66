variable "name" {
  description = "Name prefix for every resource (lowercase letters, digits and hyphens, at most 20 characters)."
  type        = string
  default     = "latchkey"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.name))
    error_message = "name must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- Network -------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC of the control plane (the primary region's)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets for the instances and the load balancer (at least two AZs). They must give the instances outbound access to GitHub, Secrets Manager and the binary URL."
  type        = list(string)
}

variable "internal" {
  description = "Internal load balancer (reachable from the VPC and peered VPCs only). False: internet-facing, limited to allowed_cidrs."
  type        = bool
  default     = true
}

variable "allowed_cidrs" {
  description = "CIDR blocks allowed to reach the load balancer: every region's edge-node VPC CIDR, plus where operators and Terraform run from."
  type        = list(string)
}

variable "port" {
  description = "Port of the control plane (--listen 0.0.0.0:PORT) and of the load balancer's HTTP listener."
  type        = number
  default     = 7070
}

variable "certificate_arn" {
  description = "ACM certificate for an additional HTTPS listener on 443 (for operators and Terraform). Null: HTTP on port only."
  type        = string
  default     = null
}

variable "domain_name" {
  description = "DNS name of the control plane. With route53_zone_id, the module creates an alias record; with certificate_arn, url is https://domain_name."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone for the domain_name alias record. Null: no record."
  type        = string
  default     = null
}

# --- Instances -----------------------------------------------------------------------------------

variable "instance_count" {
  description = "Number of control-plane instances (an autoscaling group of fixed size)."
  type        = number
  default     = 2

  validation {
    condition     = var.instance_count >= 1
    error_message = "instance_count must be at least 1."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the control plane (x86_64)."
  type        = string
  default     = "m6i.large"
}

variable "ami_id" {
  description = "AMI: an Ubuntu 24.04 (x86_64) image or a derivative with snapd, curl and python3. Null: the newest Canonical Ubuntu 24.04 image, re-read on every plan (a newer image starts an instance refresh)."
  type        = string
  default     = null
}

variable "root_volume_size" {
  description = "Root volume size in GiB."
  type        = number
  default     = 20
}

variable "latchkey_binary_url" {
  description = "https:// or s3:// URL of the `latchkey` binary (Linux x86_64) built with FoundationDB support; installed as /usr/local/bin/latchkey."
  type        = string

  validation {
    condition     = startswith(var.latchkey_binary_url, "https://") || startswith(var.latchkey_binary_url, "s3://")
    error_message = "latchkey_binary_url must start with https:// or s3://."
  }
}

variable "latchkey_binary_sha256" {
  description = "Expected SHA-256 (hex) of the binary. Null: not checked."
  type        = string
  default     = null

  validation {
    condition     = var.latchkey_binary_sha256 == null || can(regex("^[0-9a-fA-F]{64}$", var.latchkey_binary_sha256))
    error_message = "latchkey_binary_sha256 must be 64 hex digits, or null."
  }
}

variable "fdb_version" {
  description = "foundationdb-clients version installed for libfdb_c (same major.minor as the cluster; the binary uses API version 7.3)."
  type        = string
  default     = "7.3.69"
}

variable "fdb_cluster_file" {
  description = "Contents of the FoundationDB cluster file (description:id@ip:port,...): an existing cluster's, or the fdb-cluster module's cluster_file output. Written to /etc/foundationdb/fdb.cluster."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_]+:[A-Za-z0-9]+@[0-9A-Za-z.:\\[\\],()]+$", trimspace(var.fdb_cluster_file)))
    error_message = "fdb_cluster_file must look like description:id@10.0.0.1:4500,10.0.0.2:4500."
  }
}

variable "issuer_keys_secret_arn" {
  description = "Full ARN of the Secrets Manager secret (any region) holding the issuer keys: a JSON object { \"issuer-<key_id>.key\": \"<file contents>\", ... }, written to the data directory (0600) before every start."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.issuer_keys_secret_arn))
    error_message = "issuer_keys_secret_arn must be a full Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx)."
  }
}

variable "secrets_kms_key_arn" {
  description = "Customer-managed KMS key encrypting the issuer-keys secret, if any. Null: the AWS-managed key."
  type        = string
  default     = null
}

variable "extra_args" {
  description = "Further `latchkey control-plane` arguments (for example --lease-ttl-ms 10000), appended to the ExecStart line (whitespace-separated, no shell quoting)."
  type        = list(string)
  default     = []
}

variable "health_check_grace_period" {
  description = "Seconds after launch before load balancer health checks can replace an instance (covers package downloads and the first FoundationDB connection)."
  type        = number
  default     = 600
}

variable "associate_public_ip_address" {
  description = "Give instances a public IPv4 address (outbound access from public subnets without a NAT gateway; inbound is still limited to the load balancer)."
  type        = bool
  default     = true
}

variable "enable_ssm" {
  description = "Attach AmazonSSMManagedInstanceCore (Session Manager access and port forwarding to an internal load balancer)."
  type        = bool
  default     = true
}

variable "enable_deletion_protection" {
  description = "Deletion protection on the load balancer."
  type        = bool
  default     = false
}
