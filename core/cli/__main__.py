from tracewire.cli.main import main

raise SystemExit(main())
