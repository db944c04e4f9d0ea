from afflux_tracking.entrypoints.main import main

main()
