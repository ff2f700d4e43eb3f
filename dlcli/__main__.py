from dlcli.cli.cli import main

main()
