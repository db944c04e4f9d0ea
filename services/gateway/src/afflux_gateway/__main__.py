from afflux_gateway.entrypoints.main import main

main()
