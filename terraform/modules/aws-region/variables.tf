variable "name" {
  description = "Name prefix for every resource (lowercase letters, digits and hyphens, at most 20 characters so load balancer and target group names stay within 32)."
  type        = string
  default     = "latchkey"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,18}[a-z0-9]$", var.name))
    error_message = "name must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "region_name" {
  description = "Latchkey region name the nodes pass as --region; it must match a latchkey_region declared in the control plane. Null: the AWS region name."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- Network -------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "Existing VPC to deploy into. Null: the module creates a VPC with public subnets."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Existing subnets (at least two, in different AZs) for the load balancer and the nodes; used only with vpc_id. They must give the nodes outbound internet access (public subnets, or a NAT gateway)."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC the module creates (ignored with vpc_id). Give every region a distinct block so VPCs can be peered."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be an IPv4 CIDR block."
  }
}

variable "az_count" {
  description = "Number of availability zones (one public subnet each) in the VPC the module creates."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6 (an ALB needs two AZs)."
  }
}

variable "peer_cidrs" {
  description = "CIDR blocks of edge nodes in other regions (peered VPCs) allowed to forward calls to these nodes on node_port. Nodes in this module's security group are always allowed."
  type        = list(string)
  default     = []
}

variable "ingress_cidrs" {
  description = "CIDR blocks allowed to reach the public load balancer (HTTP and HTTPS)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# --- TLS -----------------------------------------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate (in this region) for the HTTPS listener. Null and certificate_domain_name null: plain HTTP on port 80 only."
  type        = string
  default     = null
}

variable "certificate_domain_name" {
  description = "With certificate_arn null: create a DNS-validated ACM certificate for this name (for example the latency-routed hostname) in route53_zone_id."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone for the ACM validation records; required with certificate_domain_name."
  type        = string
  default     = null
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

# --- Nodes ---------------------------------------------------------------------------------------

variable "control_plane_url" {
  description = "Control plane base URL the nodes use (reachable from this VPC), for example http://internal-latchkey-cp-123.us-east-1.elb.amazonaws.com:7070."
  type        = string
}

variable "latchkey_binary_url" {
  description = "https:// or s3:// URL of the release `latchkey` binary (Linux x86_64); user-data installs it as /usr/local/bin/latchkey."
  type        = string

  validation {
    condition     = startswith(var.latchkey_binary_url, "https://") || startswith(var.latchkey_binary_url, "s3://")
    error_message = "latchkey_binary_url must start with https:// or s3://."
  }
}

variable "latchkey_binary_sha256" {
  description = "Expected SHA-256 (hex) of the binary; user-data refuses a download that does not match. Null: not checked."
  type        = string
  default     = null

  validation {
    condition     = var.latchkey_binary_sha256 == null || can(regex("^[0-9a-fA-F]{64}$", var.latchkey_binary_sha256))
    error_message = "latchkey_binary_sha256 must be 64 hex digits, or null."
  }
}

variable "fdb_clients_version" {
  description = "foundationdb-clients version to install before starting (for example 7.3.69). A `latchkey` built with FoundationDB support links libfdb_c.so dynamically and does not start without it, even as an edge node. Null: the binary was built without FoundationDB support."
  type        = string
  default     = null
}

variable "enrolment_token_secret_arn" {
  description = "Full ARN of the Secrets Manager secret (any region) holding an unrestricted admin token the nodes use once, at first boot, to obtain their single-use enrolment capability."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.enrolment_token_secret_arn))
    error_message = "enrolment_token_secret_arn must be a full Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx)."
  }
}

variable "secrets_kms_key_arn" {
  description = "Customer-managed KMS key encrypting the enrolment secret, if any (the node role gets kms:Decrypt on it). Null: the secret uses the AWS-managed key."
  type        = string
  default     = null
}

variable "ami_id" {
  description = "AMI for the nodes: an Ubuntu 24.04 (x86_64) image or a derivative with snapd, curl and python3. Null: the newest Canonical Ubuntu 24.04 image, re-read on every plan (a newer image starts an instance refresh)."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "EC2 instance type of the edge nodes (x86_64)."
  type        = string
  default     = "c6i.large"
}

variable "root_volume_size" {
  description = "Root volume size in GiB (holds the compiled-module cache under /var/lib/latchkey)."
  type        = number
  default     = 20
}

variable "min_size" {
  description = "Minimum number of edge nodes."
  type        = number
  default     = 2
}

variable "max_size" {
  description = "Maximum number of edge nodes."
  type        = number
  default     = 6
}

variable "desired_capacity" {
  description = "Desired number of edge nodes."
  type        = number
  default     = 2
}

variable "asg_health_check_type" {
  description = "Autoscaling health check: EC2 (default) or ELB. With ELB, a control-plane outage (every node answers 503 on /healthz) makes the group replace the whole fleet over and over."
  type        = string
  default     = "EC2"

  validation {
    condition     = contains(["EC2", "ELB"], var.asg_health_check_type)
    error_message = "asg_health_check_type must be EC2 or ELB."
  }
}

variable "health_check_grace_period" {
  description = "Seconds after launch before autoscaling health checks count."
  type        = number
  default     = 300
}

variable "node_port" {
  description = "Port the edge node listens on and advertises to other nodes (--listen 0.0.0.0:PORT, --advertise PRIVATE_IP:PORT)."
  type        = number
  default     = 8080
}

variable "memory_limit_mb" {
  description = "--memory-limit-mb: linear memory limit per actor instance, in MiB."
  type        = number
  default     = 64
}

variable "cpu_limit_ms" {
  description = "--cpu-limit-ms: CPU time limit per call, in milliseconds."
  type        = number
  default     = 2000
}

variable "max_activations" {
  description = "--max-activations: most activations a node holds at once."
  type        = number
  default     = 10000
}

variable "idle_timeout_secs" {
  description = "--idle-timeout-secs: seconds an idle activation is kept."
  type        = number
  default     = 300
}

variable "extra_args" {
  description = "Further `latchkey edge-node` arguments, appended to the systemd ExecStart line (whitespace-separated, no shell quoting)."
  type        = list(string)
  default     = []
}

variable "associate_public_ip_address" {
  description = "Give nodes a public IPv4 address (needed for outbound access in public subnets without a NAT gateway; inbound is still limited by the security group)."
  type        = bool
  default     = true
}

variable "enable_ssm" {
  description = "Attach AmazonSSMManagedInstanceCore so operators can reach nodes with Session Manager (there is no SSH key)."
  type        = bool
  default     = true
}

variable "enable_deletion_protection" {
  description = "Deletion protection on the load balancer."
  type        = bool
  default     = false
}
