from afflux_console.entrypoints.main import main

main()
