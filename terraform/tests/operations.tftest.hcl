# Alarms (off by default), the operational outputs, the generator settings as inputs.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  deployment_assets_bucket               = "assets-bucket"
  ecr_image_filter_lambda_asset_path     = "x86_64/ecr-image-filter.zip"
  soci_index_generator_lambda_asset_path = "x86_64/soci-index-generator.zip"
}

run "no_alarms_by_default" {
  command = plan
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.generator) == 0 && length(aws_cloudwatch_metric_alarm.failure_queue) == 0
    error_message = "Alarms are off by default."
  }
  assert {
    condition     = output.soci_index_generator_errors_alarm_arn == null && output.failure_queue_age_alarm_arn == null
    error_message = "Alarm outputs are null without alarms."
  }
}

run "generator_alarms_to_a_topic" {
  command = plan
  variables {
    create_alarms       = true
    alarm_sns_topic_arn = "arn:aws:sns:eu-west-1:123456789012:oncall"
  }
  assert {
    condition     = toset([for a in aws_cloudwatch_metric_alarm.generator : a.metric_name]) == toset(["Errors", "Throttles", "DestinationDeliveryFailures"])
    error_message = "The generator needs alarms on Errors, Throttles and DestinationDeliveryFailures."
  }
  assert {
    condition = alltrue([
      for a in aws_cloudwatch_metric_alarm.generator :
      a.namespace == "AWS/Lambda" && a.dimensions == tomap({ FunctionName = "ecr-soci-indexer-SociIndexGenerator" }) &&
      a.alarm_actions == toset(["arn:aws:sns:eu-west-1:123456789012:oncall"]) && a.threshold == 1 && a.comparison_operator == "GreaterThanOrEqualToThreshold"
    ])
    error_message = "Each generator alarm fires on one event of its metric and notifies the topic."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.failure_queue) == 0
    error_message = "No queue alarms unless asked for."
  }
}

run "generator_alarm_outputs" {
  variables {
    create_alarms = true
  }
  # The mock invents computed values; give the ARNs the provider validates a valid shape.
  override_resource {
    target = aws_iam_role.filter
    values = { arn = "arn:aws:iam::123456789012:role/ecr-soci-indexer-ECRImageEventFilterLambdaRole" }
  }
  override_resource {
    target = aws_iam_role.generator
    values = { arn = "arn:aws:iam::123456789012:role/ecr-soci-indexer-SociIndexGeneratorLambdaRole" }
  }
  override_resource {
    target = aws_lambda_function.filter
    values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ecr-soci-indexer-ECRImageActionEventFilter" }
  }
  override_resource {
    target = aws_cloudwatch_event_rule.ecr_image_push
    values = { arn = "arn:aws:events:eu-west-1:123456789012:rule/ecr-soci-indexer-ECRImageActionEventBridgeRule" }
  }
  assert {
    condition     = output.soci_index_generator_errors_alarm_arn == aws_cloudwatch_metric_alarm.generator["errors"].arn && output.soci_index_generator_throttles_alarm_arn == aws_cloudwatch_metric_alarm.generator["throttles"].arn && output.soci_index_generator_destination_delivery_failures_alarm_arn == aws_cloudwatch_metric_alarm.generator["destination_delivery_failures"].arn
    error_message = "Every alarm has its output."
  }
  assert {
    condition     = output.soci_index_generator_lambda_role_name == "ecr-soci-indexer-SociIndexGeneratorLambdaRole" && output.ecr_image_filter_lambda_role_name == "ecr-soci-indexer-ECRImageEventFilterLambdaRole"
    error_message = "Role names are outputs."
  }
  assert {
    condition     = output.soci_index_generator_lambda_log_group_arn == aws_cloudwatch_log_group.generator.arn && output.ecr_image_filter_lambda_log_group_arn == aws_cloudwatch_log_group.filter.arn
    error_message = "Log group ARNs are outputs."
  }
}

run "failure_queue_alarms" {
  command = plan
  variables {
    create_alarms                                   = true
    create_failure_queue_alarms                     = true
    soci_index_generator_on_failure_destination_arn = "arn:aws:sqs:eu-west-1:123456789012:soci-failures"
    failure_queue_age_alarm_threshold_seconds       = 3600
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.failure_queue["depth"].metric_name == "ApproximateNumberOfMessagesVisible" &&
      aws_cloudwatch_metric_alarm.failure_queue["depth"].threshold == 1 &&
      aws_cloudwatch_metric_alarm.failure_queue["age"].metric_name == "ApproximateAgeOfOldestMessage" &&
      aws_cloudwatch_metric_alarm.failure_queue["age"].threshold == 3600 &&
      alltrue([for a in aws_cloudwatch_metric_alarm.failure_queue : a.dimensions == tomap({ QueueName = "soci-failures" }) && a.namespace == "AWS/SQS"])
    )
    error_message = "The failure queue needs depth and age alarms on its own name."
  }
}

run "reject_failure_queue_alarms_on_a_topic" {
  command = plan
  variables {
    create_alarms                                   = true
    create_failure_queue_alarms                     = true
    soci_index_generator_on_failure_destination_arn = "arn:aws:sns:eu-west-1:123456789012:soci-failures"
  }
  expect_failures = [aws_cloudwatch_metric_alarm.failure_queue]
}
