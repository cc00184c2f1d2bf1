"""A stack's settings, typed and validated once, up front (no eager imports: `config.values`,
`config.names` and `config.secret_keys` stay free of pydantic, for the policy pack and the tools).

    config.parse.parse_settings    raw config -> StackSettings, or SettingsError with every problem
    config.stack.StackSettings     the typed root, built from config/sections/
    config.loader.load_settings    the same, from Pulumi's config (the program's entry)
    config.stack_file              the one reader of Pulumi.<stack>.yaml for the tools
"""
