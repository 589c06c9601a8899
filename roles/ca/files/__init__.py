"""SecureStack PKI engine, installed by the securestack.pki.ca role.

The modules in this package are copies of the collection's
plugins/module_utils/_pki_*.py, private to the collection.
"""
