variable "region" {
  description = "Region to deploy to (the region of the ECR repositories to index)."
  type        = string
  default     = "us-east-1"
}

variable "deployment_assets_bucket" {
  description = "`deployment_assets_bucket` from `cargo xtask publish --json`."
  type        = string
}

variable "ecr_image_filter_lambda_asset_path" {
  description = "`ecr_image_filter_lambda_asset_path` from `cargo xtask publish --json`."
  type        = string
}

variable "soci_index_generator_lambda_asset_path" {
  description = "`soci_index_generator_lambda_asset_path` from `cargo xtask publish --json`."
  type        = string
}

variable "ecr_image_filter_lambda_source_code_hash" {
  description = "`ecr_image_filter_lambda_source_code_hash` from `cargo xtask publish --json`."
  type        = string
  default     = null
}

variable "soci_index_generator_lambda_source_code_hash" {
  description = "`soci_index_generator_lambda_source_code_hash` from `cargo xtask publish --json`."
  type        = string
  default     = null
}

variable "architecture" {
  description = "Architecture the published zips were built for (x86_64 or arm64)."
  type        = string
  default     = "x86_64"
}
