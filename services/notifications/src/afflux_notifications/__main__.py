from afflux_notifications.entrypoints.main import main

main()
