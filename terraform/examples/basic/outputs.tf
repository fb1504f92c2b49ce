output "ecr_image_filter_lambda_function_name" {
  description = "Name of the ECR image filter Lambda."
  value       = module.soci_index_builder.ecr_image_filter_lambda_function_name
}

output "soci_index_generator_lambda_function_name" {
  description = "Name of the SOCI index generator Lambda."
  value       = module.soci_index_builder.soci_index_generator_lambda_function_name
}

output "ecr_image_filter_lambda_role_arn" {
  description = "ARN of the filter's execution role."
  value       = module.soci_index_builder.ecr_image_filter_lambda_role_arn
}

output "soci_index_generator_lambda_role_arn" {
  description = "ARN of the generator's execution role."
  value       = module.soci_index_builder.soci_index_generator_lambda_role_arn
}

output "event_rule_name" {
  description = "Name of the EventBridge rule."
  value       = module.soci_index_builder.event_rule_name
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule."
  value       = module.soci_index_builder.event_rule_arn
}

output "ecr_repository_arns" {
  description = "Repositories the generator may read and write."
  value       = module.soci_index_builder.ecr_repository_arns
}
