from egovsim.cli import main

raise SystemExit(main())
