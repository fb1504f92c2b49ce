################################################################################
# Inputs of the Terraform port's copy-lambda-code module: same names, same meaning
################################################################################

variable "region" {
  description = "Region whose release bucket the zips are copied from (the release buckets are per region, like the port's). Use the region you deploy to."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "deployment_assets_bucket" {
  description = "Your S3 bucket the zips are copied into (not created here: create it first)."
  type        = string

  validation {
    condition     = length(trimspace(var.deployment_assets_bucket)) > 0
    error_message = "deployment_assets_bucket must be a non-empty S3 bucket name."
  }
}

variable "deployment_assets_key_prefix" {
  description = "Key prefix of the copies in `deployment_assets_bucket`; the copies are `<prefix><version>/<function>-<architecture>.zip`."
  type        = string
  default     = "soci-index-builder/"
  nullable    = false
}

################################################################################
# What this module adds: which release, which build, where releases live
################################################################################

variable "release_version" {
  description = "Release to copy (a `cargo xtask publish --release <version>` upload). Defaults to the release this module was published with."
  type        = string
  default     = "0.1.0"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9A-Za-z._+-]+$", var.release_version))
    error_message = "release_version must be a version such as 0.1.0 (letters, digits, . _ + -)."
  }
}

variable "architecture" {
  description = "Build to copy: `x86_64` or `arm64`. Pass the same value to the main module's `architecture`."
  type        = string
  default     = "x86_64"
  nullable    = false

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be \"x86_64\" or \"arm64\"."
  }
}

variable "source_bucket_name_pattern" {
  description = "Name of the release bucket, `{region}` replaced by `region`. Point it at your own mirror (filled with `cargo xtask publish --release`) to copy from there."
  type        = string
  default     = "soci-lambda-releases-{region}"
  nullable    = false

  validation {
    condition     = length(trimspace(var.source_bucket_name_pattern)) > 0
    error_message = "source_bucket_name_pattern must be a bucket name, optionally with {region} in it."
  }
}

variable "source_key_prefix" {
  description = "Key prefix of the releases in the release bucket (`cargo xtask publish --prefix`); a release is `<prefix><version>/manifest.json` and the zips it lists."
  type        = string
  default     = "soci-index-builder/"
  nullable    = false
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the copies (whoever applies the main module needs `kms:Decrypt` on it). Null: the bucket's default encryption."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>)."
  }
}

variable "tags" {
  description = "Tags of the copies."
  type        = map(string)
  default     = {}
  nullable    = false
}
