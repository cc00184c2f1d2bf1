"""Policy pack enforced in previews: `pulumi preview --policy-pack policy`.

The checks are plain functions in validators.py; this file only adapts them to pulumi-policy.
Waive one for a resource with the container label `litellm-gateway.policy-waiver.<policy>` (see
docs/operations.md, "Policies"), or lower its enforcement level with `--policy-pack-config`.
"""

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy

from validators import POLICIES, PolicyResource


def _adapter(check):
    def validate(args, report_violation):
        resource = PolicyResource(args.resource_type, args.name, dict(args.props),
                                  protect=bool(getattr(args.opts, "protect", False)), urn=args.urn)
        for message in check(resource):
            report_violation(message)

    return validate


PolicyPack(
    name="litellm-gateway",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(name=name, description=description, validate=_adapter(check))
        for name, (description, check) in POLICIES.items()
    ],
)
