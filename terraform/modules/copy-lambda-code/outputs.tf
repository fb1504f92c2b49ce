# The port's outputs (feed the main module's inputs of the same names) ...

output "asset_bucket" {
  description = "Bucket holding the copies: the main module's `deployment_assets_bucket`."
  value       = var.deployment_assets_bucket
}

output "ecr_image_filter_lambda_asset_path" {
  description = "Key of the filter zip's copy: the main module's `ecr_image_filter_lambda_asset_path`."
  value       = aws_s3_object_copy.lambda["ecr_image_filter"].key
}

output "soci_index_generator_lambda_asset_path" {
  description = "Key of the generator zip's copy: the main module's `soci_index_generator_lambda_asset_path`."
  value       = aws_s3_object_copy.lambda["soci_index_generator"].key
}

# ... and what this module adds.

output "ecr_image_filter_lambda_source_code_hash" {
  description = "Base64 SHA-256 of the filter zip (from the release manifest, checked on the copy): the main module's `ecr_image_filter_lambda_source_code_hash`."
  # After the copies, whose preconditions name a release without this zip.
  value      = try(local.artifacts["ecr_image_filter"].sha256_base64, null)
  depends_on = [aws_s3_object_copy.lambda]
}

output "soci_index_generator_lambda_source_code_hash" {
  description = "Base64 SHA-256 of the generator zip (from the release manifest, checked on the copy): the main module's `soci_index_generator_lambda_source_code_hash`."
  # After the copies, whose preconditions name a release without this zip.
  value      = try(local.artifacts["soci_index_generator"].sha256_base64, null)
  depends_on = [aws_s3_object_copy.lambda]
}

output "architecture" {
  description = "Architecture of the copied zips: the main module's `architecture`."
  value       = var.architecture
}

output "release_version" {
  description = "The release that was copied."
  value       = var.release_version
}
