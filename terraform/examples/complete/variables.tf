variable "region" {
  description = "Region to deploy to (the region of the ECR repositories to index)."
  type        = string
  default     = "eu-west-1"
}

variable "deployment_assets_bucket" {
  description = "`deployment_assets_bucket` from `cargo xtask publish --json`."
  type        = string
}

variable "ecr_image_filter_lambda_asset_path" {
  description = "`ecr_image_filter_lambda_asset_path` from `cargo xtask publish --json` (arm64 build)."
  type        = string
}

variable "soci_index_generator_lambda_asset_path" {
  description = "`soci_index_generator_lambda_asset_path` from `cargo xtask publish --json` (arm64 build)."
  type        = string
}

variable "ecr_image_filter_lambda_source_code_hash" {
  description = "`ecr_image_filter_lambda_source_code_hash` from `cargo xtask publish --json`."
  type        = string
}

variable "soci_index_generator_lambda_source_code_hash" {
  description = "`soci_index_generator_lambda_source_code_hash` from `cargo xtask publish --json`."
  type        = string
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary your organisation requires on roles."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets with a route (NAT or VPC endpoints) to ECR, S3 and Lambda."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups allowing HTTPS egress."
  type        = list(string)
}

variable "ecr_endpoint" {
  description = "ECR API VPC endpoint URL (https://api.ecr.<region>.vpce.amazonaws.com style), or null."
  type        = string
  default     = null
}
