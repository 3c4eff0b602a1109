#!/bin/bash
# LocalStack ready.d hook: runs inside the container once LocalStack serves requests.
# It creates nothing: the stack (table, SSM config, functions, API) comes from template.yaml
# through samlocal deploy, so LocalStack and AWS get the same resources.
set -euo pipefail

cat <<'MSG'
Federation Gateway: LocalStack is ready on http://localhost:4566. Deploy the stack with:
  samlocal build && samlocal deploy --stack-name federation-gateway --resolve-s3 \
    --capabilities CAPABILITY_IAM \
    --parameter-overrides Stage=local DeletionProtection=false \
      "GatewayConfig='$(cat infra/config.local.json)'"
MSG
