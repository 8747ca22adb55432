from faceprint.cli import main

main()
