output "ecr_image_filter_lambda_function_name" {
  description = "Name of the ECR image filter Lambda."
  value       = aws_lambda_function.filter.function_name
}

output "ecr_image_filter_lambda_function_arn" {
  description = "ARN of the ECR image filter Lambda."
  value       = aws_lambda_function.filter.arn
}

output "ecr_image_filter_lambda_role_arn" {
  description = "ARN of the ECR image filter Lambda's execution role."
  value       = aws_iam_role.filter.arn
}

output "ecr_image_filter_lambda_log_group_name" {
  description = "CloudWatch log group of the ECR image filter Lambda."
  value       = aws_cloudwatch_log_group.filter.name
}

output "soci_index_generator_lambda_function_name" {
  description = "Name of the SOCI index generator Lambda."
  value       = aws_lambda_function.generator.function_name
}

output "soci_index_generator_lambda_function_arn" {
  description = "ARN of the SOCI index generator Lambda."
  value       = aws_lambda_function.generator.arn
}

output "soci_index_generator_lambda_role_arn" {
  description = "ARN of the SOCI index generator Lambda's execution role."
  value       = aws_iam_role.generator.arn
}

output "soci_index_generator_lambda_log_group_name" {
  description = "CloudWatch log group of the SOCI index generator Lambda."
  value       = aws_cloudwatch_log_group.generator.name
}

output "event_rule_arn" {
  description = "ARN of the EventBridge rule that matches successful ECR image pushes."
  value       = aws_cloudwatch_event_rule.ecr_image_push.arn
}

output "event_rule_name" {
  description = "Name of the EventBridge rule that matches successful ECR image pushes."
  value       = aws_cloudwatch_event_rule.ecr_image_push.name
}

output "ecr_repository_arns" {
  description = "ECR repository ARNs (with IAM wildcards) the generator may pull from and push to, derived from soci_repository_image_tag_filters."
  value       = local.ecr_repository_arns
}
