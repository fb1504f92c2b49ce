output "ecr_image_filter_lambda_function_name" {
  description = "Name of the ECR image filter Lambda."
  value       = module.soci_index_builder.ecr_image_filter_lambda_function_name
}

output "soci_index_generator_lambda_function_name" {
  description = "Name of the SOCI index generator Lambda."
  value       = module.soci_index_builder.soci_index_generator_lambda_function_name
}

output "release_version" {
  description = "The release the functions run."
  value       = module.copy_lambda_code.release_version
}

output "soci_index_generator_lambda_source_code_hash" {
  description = "Base64 SHA-256 of the generator zip the function runs (from the release manifest)."
  value       = module.copy_lambda_code.soci_index_generator_lambda_source_code_hash
}
