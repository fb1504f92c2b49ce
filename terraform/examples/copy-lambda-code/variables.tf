variable "region" {
  description = "Region to deploy to; the zips are copied from this region's release bucket."
  type        = string
  default     = "us-east-1"
}

variable "deployment_assets_bucket" {
  description = "Your bucket for the Lambda zips (must exist)."
  type        = string
}

variable "release_version" {
  description = "Release to deploy. Null: the release copy-lambda-code was published with."
  type        = string
  default     = null
}

variable "architecture" {
  description = "x86_64 or arm64."
  type        = string
  default     = "x86_64"
}
