from afflux_postbacks.entrypoints.main import main

main()
