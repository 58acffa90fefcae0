"""One module per subcommand: HELP, add_arguments(parser) and main(args) -> exit code.

Modules import only light code at top level; heavy libraries load inside main().
"""
