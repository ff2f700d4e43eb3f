from dlcli.cli.cli import entry

entry()
