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

output "ecr_image_filter_lambda_role_name" {
  description = "Name of the ECR image filter Lambda's execution role (to attach more policies)."
  value       = aws_iam_role.filter.name
}

output "soci_index_generator_lambda_role_name" {
  description = "Name of the SOCI index generator Lambda's execution role (to attach more policies)."
  value       = aws_iam_role.generator.name
}

output "ecr_image_filter_lambda_log_group_arn" {
  description = "ARN of the ECR image filter Lambda's CloudWatch log group."
  value       = aws_cloudwatch_log_group.filter.arn
}

output "soci_index_generator_lambda_log_group_arn" {
  description = "ARN of the SOCI index generator Lambda's CloudWatch log group."
  value       = aws_cloudwatch_log_group.generator.arn
}

output "soci_index_generator_errors_alarm_arn" {
  description = "ARN of the alarm on the generator's Errors (null unless create_alarms)."
  value       = try(aws_cloudwatch_metric_alarm.generator["errors"].arn, null)
}

output "soci_index_generator_throttles_alarm_arn" {
  description = "ARN of the alarm on the generator's Throttles (null unless create_alarms)."
  value       = try(aws_cloudwatch_metric_alarm.generator["throttles"].arn, null)
}

output "soci_index_generator_destination_delivery_failures_alarm_arn" {
  description = "ARN of the alarm on the generator's DestinationDeliveryFailures (null unless create_alarms)."
  value       = try(aws_cloudwatch_metric_alarm.generator["destination_delivery_failures"].arn, null)
}

output "failure_queue_depth_alarm_arn" {
  description = "ARN of the alarm on the on-failure queue's depth (null unless create_alarms and create_failure_queue_alarms)."
  value       = try(aws_cloudwatch_metric_alarm.failure_queue["depth"].arn, null)
}

output "failure_queue_age_alarm_arn" {
  description = "ARN of the alarm on the age of the on-failure queue's oldest message (null unless create_alarms and create_failure_queue_alarms)."
  value       = try(aws_cloudwatch_metric_alarm.failure_queue["age"].arn, null)
}

output "ztoc_cache_repository_name" {
  description = "Name of the zTOC cache repository (null unless ztoc_cache): `cargo xtask index --ztoc-cache` takes it."
  value       = try(aws_ecr_repository.ztoc_cache[0].name, null)
}
