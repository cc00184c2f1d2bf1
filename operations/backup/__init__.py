"""Operator backup and restore of one stack (scripts/backup, scripts/restore, scripts/fetch-backup,
scripts/adopt-vault-secret; `python -m operations.backup <backup|restore|adopt|fetch> ...`).

A backup is one dated folder:
    litellm-gateway-<stack>-<UTC stamp>/
      database.dump            pg_dump, custom format
      vault-secret.json.enc    the stack's Vault secret (AES-256, key from BACKUP_PASSPHRASE), if asked
      vault-secret.meta.json   mount, path and KV version of that secret (no values)
      pulumi-stack.json        `pulumi stack export` (its secrets stay encrypted by Pulumi)
      rendered/                the rendered LiteLLM and Prometheus configuration (no secrets)
      manifest.json            what is in the folder, versions, row counts, checksums
      SHA256SUMS               `sha256sum -c SHA256SUMS` checks every file

Restore checks everything first (checksums, that pg_restore can read the dump, that the target
server is not older than the one dumped) and changes nothing if a check fails.

Modules, in the order a reader meets them: errors, stack (the stack's settings), database, vault,
crypto, pulumi_cli, manifest (checksums and verification), backup, restore_check, restore_apply,
adopt, fetch, cli (the command lines). Nothing is imported here, so importing one module does not
import the others.
"""
