from botserver.cli import main

main()
