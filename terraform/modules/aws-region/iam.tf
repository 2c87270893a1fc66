# The node role may read the enrolment secret (and the binary, when it is in S3). To make the
# role the *only* reader, also put a resource policy on the secret (see README.md).

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "node" {
  statement {
    sid     = "ReadEnrolmentToken"
    actions = ["secretsmanager:GetSecretValue"]
    # The full ARN, and the partial ARN plus Secrets Manager's random suffix.
    resources = [
      var.enrolment_token_secret_arn,
      "${var.enrolment_token_secret_arn}-??????",
    ]
  }

  dynamic "statement" {
    for_each = var.secrets_kms_key_arn == null ? [] : [var.secrets_kms_key_arn]

    content {
      sid       = "DecryptEnrolmentToken"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.binary_from_s3 ? [trimprefix(var.latchkey_binary_url, "s3://")] : []

    content {
      sid       = "ReadBinary"
      actions   = ["s3:GetObject"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${statement.value}"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.name}-edge-${local.aws_region}"
  description        = "Latchkey edge nodes in ${local.aws_region}"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json

  tags = local.tags
}

resource "aws_iam_role_policy" "node" {
  name   = "latchkey-edge-node"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = var.enable_ssm ? 1 : 0

  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  name = "${var.name}-edge-${local.aws_region}"
  role = aws_iam_role.node.name

  tags = local.tags
}
