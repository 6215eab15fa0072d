from ytap_mcp.cli import main

raise SystemExit(main())
