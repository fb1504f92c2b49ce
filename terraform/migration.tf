################################################################################
# Switching `source` from the Terraform port (kahlstrm/ecr-soci-indexer/aws)
################################################################################
#
# The port's resources that have a counterpart here move to it, so a switch updates them in place
# instead of destroying them and creating resources with the same names (which AWS refuses:
# ResourceConflictException, ResourceAlreadyExistsException). Functions, log groups, roles and the
# rule keep the port's names. The port's resources without a counterpart are destroyed by the
# switch, which is harmless: its four managed policies and their attachments (replaced by one
# inline policy per role), and its plan-time helper (RepositoryNameParsingLambda and its role).

moved {
  from = aws_lambda_function.ecr_image_action_event_filtering
  to   = aws_lambda_function.filter
}

moved {
  from = aws_lambda_function.soci_index_generator
  to   = aws_lambda_function.generator
}

moved {
  from = aws_iam_role.ecr_image_action_event_filtering
  to   = aws_iam_role.filter
}

moved {
  from = aws_iam_role.soci_index_generator
  to   = aws_iam_role.generator
}

moved {
  from = aws_cloudwatch_log_group.ecr_image_action_event_filtering_lg
  to   = aws_cloudwatch_log_group.filter
}

moved {
  from = aws_cloudwatch_log_group.soci_index_generator_lg
  to   = aws_cloudwatch_log_group.generator
}

moved {
  from = aws_cloudwatch_event_rule.ecr_image_action_event
  to   = aws_cloudwatch_event_rule.ecr_image_push
}

moved {
  from = aws_cloudwatch_event_target.lambda_target
  to   = aws_cloudwatch_event_target.filter
}

moved {
  from = aws_lambda_permission.allow_event_bridge
  to   = aws_lambda_permission.events
}
