variable "name" {
  description = "Name prefix for every resource; also the cluster file's description (hyphens become underscores)."
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

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets for the nodes; node i goes into subnet_ids[i % length(subnet_ids)], so give one per AZ to spread the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "Give at least one subnet."
  }
}

variable "private_ips" {
  description = "Fixed private IPs for the nodes (one per node, each inside its subnet). Null: AWS picks them when the network interfaces are created; the cluster file is built from the result either way."
  type        = list(string)
  default     = null
}

variable "node_count" {
  description = "Number of FoundationDB nodes (one fdbserver process and one coordinator each). 3 is the minimum for triple redundancy; 5 lets the cluster re-replicate after losing a node."
  type        = number
  default     = 3

  validation {
    condition     = var.node_count >= 1 && var.node_count <= 9 && var.node_count % 2 == 1
    error_message = "node_count must be an odd number from 1 to 9 (every node is a coordinator)."
  }
}

variable "fdb_version" {
  description = "FoundationDB version: the foundationdb-clients and foundationdb-server .deb packages are downloaded from the apple/foundationdb GitHub release of this tag."
  type        = string
  default     = "7.3.69"

  validation {
    condition     = can(regex("^7\\.3\\.[0-9]+$", var.fdb_version))
    error_message = "fdb_version must be a 7.3.x release (the control plane uses FoundationDB API version 7.3)."
  }
}

variable "redundancy_mode" {
  description = "Redundancy mode for `configure new` (single, double, triple). Needs at least 1, 2 or 3 nodes respectively."
  type        = string
  default     = "triple"

  validation {
    condition     = contains(["single", "double", "triple"], var.redundancy_mode)
    error_message = "redundancy_mode must be single, double or triple."
  }
}

variable "storage_engine" {
  description = "Storage engine for `configure new` (ssd, ssd-redwood-1, memory)."
  type        = string
  default     = "ssd"
}

variable "port" {
  description = "fdbserver port (the package's default configuration runs one process on 4500)."
  type        = number
  default     = 4500
}

variable "client_security_group_ids" {
  description = "Security groups allowed to reach the cluster on port (for example the control plane's). A list, so its length is known before apply."
  type        = list(string)
  default     = []
}

variable "client_cidrs" {
  description = "CIDR blocks allowed to reach the cluster on port."
  type        = list(string)
  default     = []
}

variable "instance_type" {
  description = "EC2 instance type of the nodes (x86_64)."
  type        = string
  default     = "m6i.large"
}

variable "ami_id" {
  description = "AMI: an Ubuntu 24.04 (x86_64) image or a derivative with curl. Null: the newest Canonical Ubuntu 24.04 image when the instances are created (later image changes are ignored; see README)."
  type        = string
  default     = null
}

variable "root_volume_size" {
  description = "Root volume size in GiB; the data lives on it (/var/lib/foundationdb)."
  type        = number
  default     = 100
}

variable "root_volume_iops" {
  description = "Provisioned IOPS of the gp3 root volume (3000 is gp3's baseline)."
  type        = number
  default     = 3000
}

variable "assign_public_ip" {
  description = "Attach an Elastic IP to each node for outbound access (downloading the packages) from public subnets without a NAT gateway. Instances on pre-created network interfaces get no automatic public IP. Inbound stays limited by the security group."
  type        = bool
  default     = true
}

variable "enable_ssm" {
  description = "Give the nodes an instance profile with AmazonSSMManagedInstanceCore (Session Manager access for fdbcli)."
  type        = bool
  default     = true
}
