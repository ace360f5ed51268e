from maskreview.cli import main

raise SystemExit(main())
