output "ecr_image_filter_lambda_function_arn" {
  description = "ARN of the ECR image filter Lambda."
  value       = module.soci_index_builder.ecr_image_filter_lambda_function_arn
}

output "soci_index_generator_lambda_function_arn" {
  description = "ARN of the SOCI index generator Lambda."
  value       = module.soci_index_builder.soci_index_generator_lambda_function_arn
}

output "ecr_image_filter_lambda_log_group_name" {
  description = "Log group of the filter."
  value       = module.soci_index_builder.ecr_image_filter_lambda_log_group_name
}

output "soci_index_generator_lambda_log_group_name" {
  description = "Log group of the generator."
  value       = module.soci_index_builder.soci_index_generator_lambda_log_group_name
}

output "ecr_repository_arns" {
  description = "Repositories the generator may read and write (team/*, base-images, apps/web)."
  value       = module.soci_index_builder.ecr_repository_arns
}

output "failure_queue_url" {
  description = "Queue receiving generator invocations that failed after all retries."
  value       = aws_sqs_queue.failures.url
}
