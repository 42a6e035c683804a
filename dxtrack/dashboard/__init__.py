"""What people look at: the live dashboard (``dxtrack ui``) and the HTML report
(``dxtrack report``), one page and one script that draw the same snapshot of the records."""
