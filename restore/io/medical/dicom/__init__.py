"""DICOM: reading (read), writing (write), the image attributes of classic and enhanced
files (attributes), time points (grouping), Siemens mosaics (mosaic), compressed
transfer syntaxes (compression), derived-image marking (derived), and the two
registered formats, one file and one series folder (formats)."""
