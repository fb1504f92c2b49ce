terraform {
  # `terraform test` with mock providers (tests/) needs Terraform >= 1.7; the module itself runs on 1.5.
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.46 is the first 5.x release with everything used here (ephemeral_storage, logging and
      # event invoke configs are older); 6.x is accepted, 7.x is not tested.
      version = ">= 5.46, < 7"
    }
  }
}
